// stb_ds.c: the single compilation unit that holds stb_ds's implementation (libstb-dev's
// stb/stb_ds.h: dynamic arrays and hash maps). Every other file includes the header only.
#define STB_DS_IMPLEMENTATION
#include <stb/stb_ds.h>
