// Intentionally small: the Channel interface is header-only; this file anchors its vtable.
#include "transport/channel.h"
