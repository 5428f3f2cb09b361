/* qs-hello: prints where it is installed, then the greeting of the qs-greet library. */
#include <stdio.h>

#include "qs-greet.h"

#ifndef QS_HELLO_PREFIX
#error "build with -DQS_HELLO_PREFIX=\"<prefix>\""
#endif

int main(void) {
    printf("qs-hello 1.0 installed at %s\n", QS_HELLO_PREFIX);
    printf("qs-greet data file: %s\n", qs_greet_data_path());
    fflush(stdout);
    if (qs_greet_print(stdout) != 0) {
        fprintf(stderr, "qs-hello: cannot read %s\n", qs_greet_data_path());
        return 1;
    }
    return 0;
}
