/*
 * test_progress.c — `replay`'s progress line as text (fd_progress_format):
 * the percentage and bar only for an input of known size, 100% only at the
 * very end, the bar sized by the final line (so it does not move), and
 * never wider than the terminal minus one column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "app/progress.h"

#define MiB (1024ULL * 1024)

static const struct {
    fd_progress_sample_t s; /* lines, lines_total, bytes, bytes_total, sized, accepted, rejected */
    int width;
    const char *out;
} rows[] = {
    /* a regular file, part way: the bar as wide as BAR_MAX allows */
    {{8400, 20000, 1200000, 3000000, 1, 8390, 10},
     120,
     "replay  40% [############..................]  8400 lines  1.1/2.9 MiB  accepted 8390  "
     "rejected 10"},
    /* the end: 100% and a full bar */
    {{20000, 20000, 3 * MiB, 3 * MiB, 1, 19980, 20},
     120,
     "replay 100% [##############################]  20000 lines  3.0/3.0 MiB  accepted 19980  "
     "rejected 20"},
    /* one byte short is not 100% */
    {{99, 100, 999, 1000, 1, 99, 0},
     80,
     "replay  99% [##############.]  99 lines  999/1000 B  accepted 99  rejected 0"},
    /* an empty file is done */
    {{0, 0, 0, 0, 1, 0, 0},
     80,
     "replay 100% [#########################]  0 lines  0/0 B  accepted 0  rejected 0"},
    /* the first draw: 0%, an empty bar sized for the last line */
    {{0, 20000, 0, 2 * MiB, 1, 0, 0},
     80,
     "replay   0% [...........]  0 lines  0.0/2.0 MiB  accepted 0  rejected 0"},
    /* stdin or a pipe: no percentage, no bar */
    {{8400, 20000, 1200000, 3000000, 0, 8390, 10},
     120,
     "replay  8400 lines  1.1 MiB  accepted 8390  rejected 10"},
    {{12, 12, 700, 700, 0, 12, 0}, 120, "replay  12 lines  700 B  accepted 12  rejected 0"},
    /* narrow: no room for a bar, and cut at width - 1 */
    {{8400, 20000, 1200000, 3000000, 1, 8390, 10}, 40, "replay  40%  8400 lines  1.1/2.9 MiB  a"},
    /* unknown width (0): 80 columns */
    {{8400, 20000, 1200000, 3000000, 0, 8390, 10},
     0,
     "replay  8400 lines  1.1 MiB  accepted 8390  rejected 10"},
};

static void test_format(void **state) {
    (void)state;
    char buf[512];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = fd_progress_format(&rows[i].s, rows[i].width, buf, sizeof buf);
        if (strcmp(buf, rows[i].out) != 0) print_error("row %zu: \"%s\"\n", i, buf);
        assert_string_equal(buf, rows[i].out);
        assert_int_equal(n, strlen(rows[i].out));
        assert_true(rows[i].width == 0 || n <= (size_t)rows[i].width - 1);
    }
}

/* the bar does not change width while the numbers grow */
static void test_bar_stays_put(void **state) {
    (void)state;
    char buf[512];
    size_t bar_width = 0;
    for (int64_t l = 0; l <= 100000; l += 2500) {
        fd_progress_sample_t s = {l, 100000, (uint64_t)l * 90, 9000000, 1, (uint64_t)l, 0};
        fd_progress_format(&s, 100, buf, sizeof buf);
        const char *open = strchr(buf, '['), *close = strchr(buf, ']');
        assert_non_null(open);
        assert_non_null(close);
        if (!bar_width) bar_width = (size_t)(close - open);
        assert_int_equal((size_t)(close - open), bar_width);
    }
}

/* a buffer smaller than the terminal: cut to the buffer, NUL-terminated */
static void test_small_buffer(void **state) {
    (void)state;
    char buf[10];
    fd_progress_sample_t s = {5, 10, 50, 100, 1, 5, 0};
    assert_int_equal(fd_progress_format(&s, 200, buf, sizeof buf), 9);
    assert_string_equal(buf, "replay  5");
    assert_int_equal(fd_progress_format(&s, 200, buf, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_bar_stays_put),
        cmocka_unit_test(test_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
