#include "qs-greet.h"

#ifndef QS_GREET_DATA
#error "build with -DQS_GREET_DATA=\"<prefix>/share/qs-greet/greeting.txt\""
#endif

const char *qs_greet_data_path(void) { return QS_GREET_DATA; }

int qs_greet_print(FILE *out) {
    FILE *data = fopen(QS_GREET_DATA, "r");
    if (data == NULL) {
        return -1;
    }
    char buffer[512];
    size_t count;
    while ((count = fread(buffer, 1, sizeof buffer, data)) > 0) {
        fwrite(buffer, 1, count, out);
    }
    fclose(data);
    return 0;
}
