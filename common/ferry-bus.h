/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The names of ferryd's D-Bus API, shared by the daemon and ferryctl.
 * The API itself is documented in docs/DBUS.md. */

#define FERRY_BUS_NAME            "org.ferry.Ferry1"
#define FERRY_OBJECT_PATH         "/org/ferry/Ferry1"
#define FERRY_NODE_PATH_PREFIX    "/org/ferry/Ferry1/node"
#define FERRY_CLUSTER_INTERFACE   "org.ferry.Ferry1.Cluster"
#define FERRY_NODE_INTERFACE      "org.ferry.Ferry1.Node"

/* polkit action a caller needs for every call that changes cluster state. */
#define FERRY_POLKIT_ACTION_MANAGE "org.ferry.manage"

#define FERRY_ERROR_NOT_QUORATE        "org.ferry.Ferry1.Error.NotQuorate"
#define FERRY_ERROR_NOT_SYNCED         "org.ferry.Ferry1.Error.NotSynced"
#define FERRY_ERROR_NO_SUCH_NODE       "org.ferry.Ferry1.Error.NoSuchNode"
#define FERRY_ERROR_MEMBERSHIP_CHANGED "org.ferry.Ferry1.Error.MembershipChanged"
#define FERRY_ERROR_REJECTED           "org.ferry.Ferry1.Error.Rejected"

#define FERRY_JOB_PATH_PREFIX     "/org/ferry/Ferry1/job"
#define FERRY_JOB_INTERFACE       "org.ferry.Ferry1.Job"

#define FERRY_ERROR_NO_SUCH_VM           "org.ferry.Ferry1.Error.NoSuchVm"
#define FERRY_ERROR_NO_SUCH_VOLUME       "org.ferry.Ferry1.Error.NoSuchVolume"
#define FERRY_ERROR_NO_SUCH_JOB          "org.ferry.Ferry1.Error.NoSuchJob"
#define FERRY_ERROR_MIGRATION_REFUSED    "org.ferry.Ferry1.Error.MigrationRefused"
