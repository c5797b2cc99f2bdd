/*
 * err.c — names of Usher's error codes.
 */
#include "core/err.h"

const char *usher_strerror(int err)
{
    switch (err) {
    case USHER_OK: return "ok";
    case USHER_EINVAL: return "invalid input";
    case USHER_ENOTFOUND: return "not found";
    case USHER_ECONFLICT: return "conflict";
    case USHER_EUPSTREAM: return "upstream failure";
    case USHER_EDB: return "database failure";
    case USHER_EIO: return "i/o failure";
    case USHER_ELIMIT: return "limit exceeded";
    case USHER_EFORBIDDEN: return "forbidden";
    case USHER_ECONFIG: return "configuration error";
    case USHER_ESCHEMA: return "database schema is newer than this program";
    case USHER_EDBDOWN: return "database unavailable";
    default: return "unknown error";
    }
}
