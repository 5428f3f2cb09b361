/* qs-greet: a tiny library whose data file lives in its own install prefix. */
#ifndef QS_GREET_H
#define QS_GREET_H

#include <stdio.h>

/* Absolute path of the greeting file, compiled in as a C string (relocated on install). */
const char *qs_greet_data_path(void);

/* Copy the greeting file to out; returns 0, or -1 when the file cannot be read. */
int qs_greet_print(FILE *out);

#endif
