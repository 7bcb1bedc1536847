/* provision/fetch.h — bounded HTTP(S) GETs for provisioning. */
#pragma once

#include "ignition.h"

/* Total time allowed for one GET, seconds. */
extern int prov_http_timeout;
int prov_fetch_http(const char *url, size_t max, char **ret_data, size_t *ret_len, struct prov_err *err);
