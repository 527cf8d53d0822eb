/* version.h - the release faasd and faasctl report (--version, /metrics). */
#ifndef FAASD_VERSION_H
#define FAASD_VERSION_H

#define FAASD_VERSION "0.1.0"

#endif
