/*
 * conf_int.h — private to conf/: what conf.c and redis_url.c share.
 */
#ifndef FD_CONF_INT_H
#define FD_CONF_INT_H

#include <stdint.h>

/* Whole decimal text, optional leading '-', nothing else; 0 or -1. */
int fd_conf_parse_int(const char *s, int64_t *v);

#endif
