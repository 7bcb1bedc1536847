/* image/diskguid.h — deterministic GUIDs from a build seed (SHA-256; needs -lcrypto, so not in static tools). */
#pragma once

#include "gpt.h"

/* GUID = first 16 bytes of SHA-256("cairn-guid\0" seed "\0" purpose), as RFC 4122 bytes with the version set
 * to 4 and the variant to 10xx, stored in on-disk order. Same seed and purpose, same GUID.
 * Purposes used by cairn-mkdisk: "disk" for the disk GUID, "partition:<PARTLABEL>" for a partition. */
int disk_guid_derive(const char *seed, const char *purpose, struct gpt_guid *ret);
