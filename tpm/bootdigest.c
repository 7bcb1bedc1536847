/* tpm/bootdigest.c — kernel, initrd and slot command-line digests of a /usr image (libext2fs + OpenSSL). */
#include "bootcfg/grubenv.h"
#include "bootdigest.h"

#include <errno.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

#define BOOT_FILE_MAX (512u << 20)

static void fs_closep(ext2_filsys *fs) {
        if (*fs)
                (void)ext2fs_close_free(fs);
}

/* Stream a file of the image through SHA-256 (or copy at most max bytes into ret_copy when it is non-NULL). */
static int file_sha256(ext2_filsys fs, const char *path, uint8_t out[32], char *copy, size_t max, char *why,
                       size_t wsize) {
        ext2_ino_t ino;
        errcode_t er = ext2fs_namei_follow(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino);
        if (er)
                return snprintf(why, wsize, "no /usr/%s in the image", path), -ENOENT;
        struct ext2_inode inode;
        if (ext2fs_read_inode(fs, ino, &inode) || !LINUX_S_ISREG(inode.i_mode))
                return snprintf(why, wsize, "/usr/%s in the image is not a regular file", path), -EINVAL;
        uint64_t size = EXT2_I_SIZE(&inode);
        if (size > (copy ? max : BOOT_FILE_MAX))
                return snprintf(why, wsize, "/usr/%s in the image is too large", path), -EFBIG;
        ext2_file_t f;
        if ((er = ext2fs_file_open(fs, ino, 0, &f)))
                return snprintf(why, wsize, "cannot open /usr/%s: %s", path, error_message(er)), -EIO;
        EVP_MD_CTX *h = EVP_MD_CTX_new();
        int r = h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
        uint8_t buf[65536];
        uint64_t got = 0;
        while (r == 0 && got < size) {
                unsigned k = 0;
                er = ext2fs_file_read(f, buf, sizeof buf, &k);
                if (er || k == 0)
                        break;
                if (copy)
                        memcpy(copy + got, buf, k);
                if (EVP_DigestUpdate(h, buf, k) != 1)
                        r = -EIO;
                got += k;
        }
        ext2fs_file_close(f);
        unsigned len = 0;
        if (r == 0 && got != size)
                r = -EIO, snprintf(why, wsize, "cannot read /usr/%s of the image", path);
        if (r == 0 && EVP_DigestFinal_ex(h, out, &len) != 1)
                r = -EIO, snprintf(why, wsize, "SHA-256 failed");
        EVP_MD_CTX_free(h);
        if (copy && r == 0)
                copy[size] = 0;
        return r;
}

int usr_boot_digests(const char *image, uint64_t offset, uint8_t kernel[32], uint8_t initrd[32], uint8_t cmdline[32],
                     char *why, size_t wsize) {
        char opts[64];
        snprintf(opts, sizeof opts, "offset=%llu", (unsigned long long)offset);
        _cleanup_(fs_closep) ext2_filsys fs = NULL;
        initialize_ext2_error_table();
        errcode_t er = ext2fs_open2(image, opts, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
        if (er)
                return snprintf(why, wsize, "not an ext4 image: %s", error_message(er)), -EMEDIUMTYPE;
        int r = file_sha256(fs, "boot/vmlinuz", kernel, NULL, 0, why, wsize);
        if (r < 0)
                return r;
        r = file_sha256(fs, "boot/initrd", initrd, NULL, 0, why, wsize);
        if (r < 0)
                return r;
        /* The slot's own command-line arguments: the verity root hash, read as GRUB reads it (docs/verity.md). */
        char args[256] = "", venv[4097], sector[32], hash[160], tmp[32];
        if (file_sha256(fs, "lib/cairn/verity.env", (uint8_t *)tmp, venv, 4096, why, wsize) == 0 &&
            grubenv_get(venv, strlen(venv), "usrhash_sector", sector, sizeof sector) == 0) {
                char *end;
                errno = 0;
                unsigned long long s = strtoull(sector, &end, 10);
                _cleanup_close_ int fd = open(image, O_RDONLY | O_CLOEXEC);
                char blk[1024];
                if (errno || *end || fd < 0 || pread_full(fd, blk, sizeof blk, offset + s * 512) < 0 ||
                    grubenv_get(blk, sizeof blk, "usrhash", hash, sizeof hash) < 0)
                        return snprintf(why, wsize, "/usr/lib/cairn/verity.env names no readable root-hash block"),
                               -EBADMSG;
                snprintf(args, sizeof args, "cairn.usrhash=%s", hash);
        }
        why[0] = 0;
        unsigned len;
        return EVP_Digest(args, strlen(args), cmdline, &len, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}
