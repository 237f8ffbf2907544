/* libical's side of the parser comparison (scripts/bench-parsers): parses every file named
 * on the command line with icalparser_parse_string, over and over for IMIPD_BENCH_SECS
 * seconds (default 3), and prints the same JSON line as examples/bench_parsers.rs. */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(1); }
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* VCALENDARs in one parse result: the root itself, or its children for a stream. */
static long count(icalcomponent *c) {
    if (!c) return 0;
    if (icalcomponent_isa(c) == ICAL_VCALENDAR_COMPONENT) return 1;
    return icalcomponent_count_components(c, ICAL_VCALENDAR_COMPONENT);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s FILE.ics...\n", argv[0]); return 2; }
    const char *s = getenv("IMIPD_BENCH_SECS");
    double secs = s ? atof(s) : 3.0;
    int files = argc - 1;
    char **text = malloc(sizeof(char *) * files);
    size_t *len = malloc(sizeof(size_t) * files);
    int failed = 0;
    for (int i = 0; i < files; i++) {
        text[i] = slurp(argv[i + 1], &len[i]);
        icalcomponent *c = icalparser_parse_string(text[i]);
        if (!c) failed++;
        icalcomponent_free(c);
    }
    icalerror_set_errors_are_fatal(0);
    double start = now(), elapsed = 0;
    long objects = 0, rounds = 0;
    double bytes = 0;
    while ((elapsed = now() - start) < secs) {
        for (int i = 0; i < files; i++) {
            icalcomponent *c = icalparser_parse_string(text[i]);
            objects += count(c);
            bytes += (double)len[i];
            if (c) icalcomponent_free(c);
        }
        rounds++;
    }
    elapsed = now() - start;
    printf("{\"parser\": \"libical %s (icalparser_parse_string)\", \"files\": %d, \"failed\": %d, "
           "\"rounds\": %ld, \"objects_per_s\": %.1f, \"mib_per_s\": %.3f}\n",
           ICAL_VERSION, files, failed, rounds, objects / elapsed, bytes / elapsed / 1048576.0);
    return 0;
}
