# qbias: build, test and run the demo.
#
#   make            build build/qbias (-O2, -march=native where the compiler supports it)
#   make PORTABLE=1 build for any CPU of the architecture (no -march=native)
#   make test       build and run the unit and end-to-end tests (last line: "N passed, N failed")
#   make demo       run the main job on stories260K and print the summary
#   make deps       check the system packages; installs missing ones when run as root
#
# Every build target first runs the package check, so a fresh Debian/Ubuntu machine needs only
# `make demo` or `make test`.

CC ?= cc
BUILD := build

# Debian/Ubuntu packages the build needs.
DEB_PACKAGES := pkg-config libopenblas-dev libcjson-dev libstb-dev libssl-dev

ifeq ($(PORTABLE),1)
  MARCH :=
else
  MARCH := $(shell $(CC) -march=native -E -x c /dev/null >/dev/null 2>&1 && echo -march=native)
endif

PKG_CFLAGS := $(shell pkg-config --cflags libcjson openblas libcrypto 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs libcjson openblas libcrypto 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp $(MARCH) $(PKG_CFLAGS) -MMD -MP
ifeq ($(WERROR),1)
  CFLAGS += -Werror
endif
LDLIBS += $(PKG_LIBS) -lm -lpthread

LIB_SOURCES := $(wildcard engine/*.c kernels/*.c quant/*.c probes/*.c)
TEST_SOURCES := $(wildcard tests/*.c)
LIB_OBJECTS := $(LIB_SOURCES:%.c=$(BUILD)/%.o)
TEST_OBJECTS := $(TEST_SOURCES:%.c=$(BUILD)/%.o)

.PHONY: all deps test demo clean

all: deps $(BUILD)/qbias

deps:
	@sh scripts/check-deps.sh $(DEB_PACKAGES)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Each instruction-set file is compiled for its own instruction set whatever the host, and used only
# where the CPU has it (kernels/dispatch.c). -ffp-contract=off (also the ISO C default) keeps the
# compiler from fusing multiplies and adds that the reference order keeps separate.
ifneq ($(findstring x86_64,$(shell $(CC) -dumpmachine)),)
$(BUILD)/kernels/avx2.o: CFLAGS += -mavx2 -mfma -mf16c -ffp-contract=off
$(BUILD)/kernels/avxvnni.o: CFLAGS += -mavx2 -mfma -mf16c -mavxvnni -ffp-contract=off
$(BUILD)/kernels/avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mf16c -mfma \
    -ffp-contract=off
endif
$(BUILD)/kernels/scalar.o: CFLAGS += -ffp-contract=off

$(BUILD)/qbias: $(BUILD)/qbias.o $(LIB_OBJECTS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/qbias_tests: $(TEST_OBJECTS) $(LIB_OBJECTS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# The tests run with the machine's OPENBLAS_* settings untouched; the runner prints one line per
# test and "N passed, N failed" last.
test: deps $(BUILD)/qbias $(BUILD)/qbias_tests
	./$(BUILD)/qbias_tests $(TESTS)

DEMO_OUT ?= runs/demo
demo: deps $(BUILD)/qbias
	./$(BUILD)/qbias eval --model stories260K --quant fp32,rtn:w8g128,rtn:w4g128 \
	    --probes stereoset,redditbias,crows_pairs --out $(DEMO_OUT)
	@cat $(DEMO_OUT)/summary.md

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJECTS:.o=.d) $(TEST_OBJECTS:.o=.d) $(BUILD)/qbias.d
