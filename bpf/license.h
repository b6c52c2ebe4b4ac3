/* SPDX-License-Identifier: GPL-2.0 */
/* The one license declaration every sensor object carries (GPL: the helpers
 * the sensors call are GPL-only). Included by the shared headers. */
#pragma once

char LICENSE[] SEC("license") = "GPL";
