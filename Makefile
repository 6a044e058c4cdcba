# qbias: build, test and run the demo.
#
#   make            build build/qbias (-O2, -march=native where the compiler supports it)
#   make PORTABLE=1 build for any CPU of the architecture (no -march=native)
#   make test       build and run the unit and end-to-end tests (last line: "N passed, N failed")
#   make demo       run the main job on stories260K and print the summary
#   make test-neon  cross-compile the kernel tests for aarch64 and run them under qemu-user
#   make deps       check the system packages; installs missing ones when run as root
#
# Every build target first runs the package check, so a fresh Debian/Ubuntu machine needs only
# `make demo` or `make test`. The build itself then runs in a second make, which reads the
# pkg-config flags of packages the check may just have installed.
#
# CFLAGS and LDFLAGS are yours (default -O2 -g); qbias's own flags are added to them, so
#   make BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined" LDFLAGS=-fsanitize=address,undefined test
# builds and tests with sanitizers in build-asan/ (keep the build folder inside the repository:
# the binaries find the data manifests from their own location).

CC ?= cc
BUILD := build

# Debian/Ubuntu packages the build needs, and those the tests add: the aarch64 cross compiler and
# qemu-user run the NEON kernels' tests on x86 machines.
DEB_PACKAGES := pkg-config libopenblas-dev libcjson-dev libstb-dev libssl-dev libpcre2-dev libicu-dev
TEST_PACKAGES := gcc-aarch64-linux-gnu qemu-user

ifeq ($(PORTABLE),1)
  MARCH :=
else
  MARCH := $(shell $(CC) -march=native -E -x c /dev/null >/dev/null 2>&1 && echo -march=native)
endif

PKG_CFLAGS := $(shell pkg-config --cflags libcjson openblas libcrypto libpcre2-8 icu-uc 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs libcjson openblas libcrypto libpcre2-8 icu-uc 2>/dev/null)

CFLAGS ?= -O2 -g
QBIAS_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp $(MARCH) $(PKG_CFLAGS) -MMD -MP
ifeq ($(WERROR),1)
  QBIAS_CFLAGS += -Werror
endif
LDLIBS += $(PKG_LIBS) -lm -lpthread

LIB_SOURCES := $(wildcard engine/*.c kernels/*.c quant/*.c probes/*.c)
TEST_SOURCES := $(wildcard tests/*.c)
LIB_OBJECTS := $(LIB_SOURCES:%.c=$(BUILD)/%.o)
TEST_OBJECTS := $(TEST_SOURCES:%.c=$(BUILD)/%.o)

.PHONY: all deps binaries test test-neon demo clean

all: deps
	@$(MAKE) --no-print-directory $(BUILD)/qbias

binaries: $(BUILD)/qbias $(BUILD)/qbias_tests

deps:
	@sh scripts/check-deps.sh $(DEB_PACKAGES)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(QBIAS_CFLAGS) $(CFLAGS) -c $< -o $@

# Each instruction-set file is compiled for its own instruction set whatever the host, and used only
# where the CPU has it (kernels/dispatch.c). -ffp-contract=off (also the ISO C default) keeps the
# compiler from fusing multiplies and adds that the reference order keeps separate.
ifneq ($(findstring x86_64,$(shell $(CC) -dumpmachine)),)
$(BUILD)/kernels/avx2.o: QBIAS_CFLAGS += -mavx2 -mfma -mf16c -ffp-contract=off
$(BUILD)/kernels/avxvnni.o: QBIAS_CFLAGS += -mavx2 -mfma -mf16c -mavxvnni -ffp-contract=off
$(BUILD)/kernels/avx512.o: QBIAS_CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mf16c \
    -mfma -ffp-contract=off
endif
ifneq ($(findstring aarch64,$(shell $(CC) -dumpmachine)),)
$(BUILD)/kernels/neon.o: QBIAS_CFLAGS += -march=armv8.2-a+dotprod -ffp-contract=off
endif
$(BUILD)/kernels/scalar.o: QBIAS_CFLAGS += -ffp-contract=off

$(BUILD)/qbias: $(BUILD)/qbias.o $(LIB_OBJECTS)
	$(CC) $(QBIAS_CFLAGS) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/qbias_tests: $(TEST_OBJECTS) $(LIB_OBJECTS)
	$(CC) $(QBIAS_CFLAGS) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The tests run with the machine's OPENBLAS_* settings untouched; the runner prints one line per
# test and "N passed, N failed" last. QBIAS_BIN tells the end-to-end tests which binary to run;
# one of them runs the cross-compiled NEON kernel tests under qemu-user.
test: deps
	@sh scripts/check-deps.sh $(TEST_PACKAGES)
	@$(MAKE) --no-print-directory binaries $(BUILD)/aarch64/kernel_tests
	QBIAS_BIN=./$(BUILD)/qbias ./$(BUILD)/qbias_tests $(TESTS)

# The NEON kernels, cross-compiled with Debian's aarch64 compiler and run under qemu-user with a
# CPU that has the dot-product extension. The binary links only kernels/ and quant/, plus the C
# library and libgomp that the cross-compiler packages bring, so no arm64 library packages are
# needed.
CROSS_CC ?= aarch64-linux-gnu-gcc
NEON_SOURCES := $(wildcard kernels/*.c) quant/format.c quant/rtn.c tests/test_kernels.c \
    tests/neon/runner.c
$(BUILD)/aarch64/kernel_tests: $(NEON_SOURCES) $(wildcard kernels/*.h quant/*.h tests/*.h)
	@mkdir -p $(BUILD)/aarch64
	$(CROSS_CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -fopenmp -ffp-contract=off \
	    -march=armv8.2-a+dotprod $(NEON_SOURCES) -o $@ -lm

test-neon:
	@sh scripts/check-deps.sh $(TEST_PACKAGES)
	@$(MAKE) --no-print-directory $(BUILD)/aarch64/kernel_tests
	qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu $(BUILD)/aarch64/kernel_tests

# The main job: prints the Markdown summary and leaves every file in $(DEMO_OUT).
DEMO_OUT ?= runs/demo
demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/qbias
	./$(BUILD)/qbias eval --model stories260K --quant fp32,rtn:w8g128,rtn:w4g128 \
	    --probes stereoset,redditbias,crows_pairs --out $(DEMO_OUT)

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJECTS:.o=.d) $(TEST_OBJECTS:.o=.d) $(BUILD)/qbias.d
