/*
 * mppyjson.h: jansson values and oslo notification fields as Python objects
 */
#pragma once

#include "mppy.h"

#include <jansson.h>

#include "mposlo.h"

/* A new reference to v as dict/list/str/int/float/bool/None; NULL with an exception. */
PyObject *mpPyFromJSON(json_t *v);

/*
 * The fields of notification_info(): envelope_version, format, event_type,
 * live_migration_event, ..., node (None when absent). New dict, or NULL with an exception.
 */
PyObject *mpPyOsloInfoToDict(const mpOsloInfo *info);
