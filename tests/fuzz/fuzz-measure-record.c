/* tests/fuzz/fuzz-measure-record.c — libFuzzer target for the agent's measured-boot record parser
 * (updater/agent/measure-record.c; the record is read from the state directory). Contract: an accepted record
 * formats back to text that parses to the same record; a refusal is -EBADMSG with a reason. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/measure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        MeasureRecord m;
        const char *why = NULL;
        unsigned line = 0;
        int r = measure_record_parse((const char *)data, size, &m, &why, &line);
        if (r < 0) {
                if (r != -EBADMSG || !why)
                        abort();
                return 0;
        }
        if ((m.slot != 0 && m.slot != 1) || m.n_banks == 0 || m.n_banks > MEASURE_BANKS_MAX)
                abort();
        Buf b;
        buf_init(&b, MEASURE_FILE_MAX);
        if (measure_record_format(&m, &b) < 0)
                abort();
        MeasureRecord m2;
        if (measure_record_parse(b.data, b.len, &m2, &why, &line) < 0 || memcmp(&m, &m2, sizeof m) != 0)
                abort();
        buf_free(&b);
        return 0;
}
