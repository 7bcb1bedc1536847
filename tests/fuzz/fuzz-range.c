/* tests/fuzz/fuzz-range.c — libFuzzer target for cairn-server's Range header parser. Input: 8 bytes of file size
 * (little-endian; shorter input: size 4096) then the header text. Checks the contract: a satisfiable answer lies
 * inside the file and is not empty; an unsatisfiable one only for a start at or past the end or an empty suffix. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint64_t fsize = 4096;
        if (size >= 8) {
                fsize = 0;
                for (int i = 7; i >= 0; i--)
                        fsize = fsize << 8 | data[i];
                data += 8;
                size -= 8;
        }
        char *h = malloc(size + 1);
        if (!h)
                return 0;
        memcpy(h, data, size);
        h[size] = 0;
        uint64_t start = UINT64_MAX, len = UINT64_MAX;
        int r = http_range_parse(h, fsize, &start, &len);
        if (r == 1) {
                if (len == 0 || start >= fsize || len > fsize - start)
                        abort();
        } else if (r == 0 || r == -ERANGE) {
                if (start != UINT64_MAX || len != UINT64_MAX)
                        abort(); /* outputs untouched unless satisfiable */
                if (r == -ERANGE && strncmp(h, "bytes=", 6) != 0)
                        abort();
        } else
                abort();
        free(h);
        return 0;
}
