// CRC-32C (Castagnoli), the image format's checksum. Shared by the addon and
// the restore executable so both sides agree bit for bit.
#pragma once
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
uint32_t Crc32c(uint32_t crc, const void *data, size_t len);
#ifdef __cplusplus
}
#endif
