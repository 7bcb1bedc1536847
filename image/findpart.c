/* image/findpart.c — cairn-findpart: name the block device of a GPT partition by PARTUUID or PARTLABEL
 * (the initramfs's lookup: busybox's blkid knows neither, and Linux 6.1's uevent has no PARTUUID). Static. */
#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include "gpt.h"
#include "log.h"

/* Partition number (1-based) of the entry matching key=value on disk, or -ENOENT. */
static int match_disk(const char *dev, const char *key, const char *value) {
        _cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        _cleanup_gpt_ struct gpt_table *t = NULL;
        int r = gpt_read(fd, 0, GPT_READ_DEGRADED, &t, NULL);
        if (r < 0)
                return r;
        struct gpt_guid want;
        bool by_uuid = strcmp(key, "PARTUUID") == 0;
        if (by_uuid && gpt_guid_parse(value, &want) < 0)
                return -EINVAL;
        for (unsigned i = 0; i < t->num_entries; i++) {
                const uint8_t *e = gpt_entry(t, i);
                if (!gpt_entry_is_used(e))
                        continue;
                if (by_uuid) {
                        struct gpt_guid g;
                        gpt_entry_get_uuid(e, &g);
                        if (gpt_guid_equal(&g, &want))
                                return (int)i + 1;
                } else {
                        char name[GPT_NAME_MAX_UTF8];
                        if (gpt_entry_get_name(e, name, sizeof name) >= 0 && strcmp(name, value) == 0)
                                return (int)i + 1;
                }
        }
        return -ENOENT;
}

/* The /dev name of partition number partno of disk (from sysfs, e.g. vda3 or nvme0n1p3). */
static int part_name(const char *disk, int partno, char *buf, size_t size) {
        char path[512];
        snprintf(path, sizeof path, "/sys/block/%s", disk);
        DIR *d = opendir(path);
        if (!d)
                return negative_errno();
        int r = -ENOENT;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, disk, strlen(disk)) != 0)
                        continue;
                char p[800], num[32] = "";
                snprintf(p, sizeof p, "%s/%s/partition", path, de->d_name);
                FILE *f = fopen(p, "re");
                if (!f)
                        continue;
                if (fgets(num, sizeof num, f) && atoi(num) == partno) {
                        snprintf(buf, size, "/dev/%s", de->d_name);
                        r = 0;
                }
                fclose(f);
                if (r == 0)
                        break;
        }
        closedir(d);
        return r;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        if (argc != 2 || !strchr(argv[1], '=')) {
                fprintf(stderr, "usage: cairn-findpart PARTUUID=<uuid>|PARTLABEL=<label>\n");
                return 2;
        }
        char *key = argv[1], *value = strchr(argv[1], '=');
        *value++ = 0;
        if (strcmp(key, "PARTUUID") != 0 && strcmp(key, "PARTLABEL") != 0) {
                log_msg("unknown key '%s' (PARTUUID or PARTLABEL)", key);
                return 2;
        }
        DIR *d = opendir("/sys/block");
        if (!d)
                return log_error_errno(negative_errno(), "cannot read '/sys/block'"), 1;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !strncmp(de->d_name, "loop", 4) || !strncmp(de->d_name, "ram", 3))
                        continue;
                char dev[300], out[300];
                snprintf(dev, sizeof dev, "/dev/%s", de->d_name);
                int n = match_disk(dev, key, value);
                if (n > 0 && part_name(de->d_name, n, out, sizeof out) == 0) {
                        puts(out);
                        closedir(d);
                        return 0;
                }
        }
        closedir(d);
        return 1; /* not (yet) there: the initramfs waits and asks again */
}
