/* placeholder until the command lands */
#include <stdio.h>
#include "h2k.h"
int main(void) { fprintf(stderr, "h2k-login: not built yet\n"); return H2K_EX_FAIL; }
