/* C23 entry points that glibc 2.38 added and Debian unstable's builds call.
 * Linked into Apptainer's binaries on an older glibc (Debian 12 has 2.36) by scripts/engines.sh.
 * The C23 variants differ only in accepting binary ("0b101") numbers, which Apptainer never parses;
 * each forwards to the C99 function of the running glibc. elf_versions.py refuses to patch a binary
 * that needs any newer-glibc symbol this file does not define, so a new need fails loudly. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

long __isoc23_strtol(const char *s, char **e, int b) { return strtol(s, e, b); }
unsigned long __isoc23_strtoul(const char *s, char **e, int b) { return strtoul(s, e, b); }
long long __isoc23_strtoll(const char *s, char **e, int b) { return strtoll(s, e, b); }
unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
intmax_t __isoc23_strtoimax(const char *s, char **e, int b) { return strtoimax(s, e, b); }
uintmax_t __isoc23_strtoumax(const char *s, char **e, int b) { return strtoumax(s, e, b); }
long __isoc23_wcstol(const wchar_t *s, wchar_t **e, int b) { return wcstol(s, e, b); }
unsigned long __isoc23_wcstoul(const wchar_t *s, wchar_t **e, int b) { return wcstoul(s, e, b); }

int __isoc23_vsscanf(const char *s, const char *f, va_list ap) { return vsscanf(s, f, ap); }
int __isoc23_vfscanf(FILE *fp, const char *f, va_list ap) { return vfscanf(fp, f, ap); }
int __isoc23_vscanf(const char *f, va_list ap) { return vscanf(f, ap); }

int __isoc23_sscanf(const char *s, const char *f, ...) {
  va_list ap; va_start(ap, f); int r = vsscanf(s, f, ap); va_end(ap); return r;
}
int __isoc23_fscanf(FILE *fp, const char *f, ...) {
  va_list ap; va_start(ap, f); int r = vfscanf(fp, f, ap); va_end(ap); return r;
}
int __isoc23_scanf(const char *f, ...) {
  va_list ap; va_start(ap, f); int r = vscanf(f, ap); va_end(ap); return r;
}
