/* placeholder until the command lands */
#include <stdio.h>
#include "h2k.h"
int main(void) { fprintf(stderr, "h2k-ls: not built yet\n"); return H2K_EX_FAIL; }
