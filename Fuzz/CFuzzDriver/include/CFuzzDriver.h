// libFuzzer's driver entry point (compiler-rt, FuzzerInterface.h), declared for Swift so
// that mail-fuzz can start libFuzzer from its own `main`: SwiftPM links executables with
// `main` aliased to `<module>_main`, which rules out libFuzzer's own `main`.
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
