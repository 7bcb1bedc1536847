COMMON_SRCS += common/log.c common/fileio.c
