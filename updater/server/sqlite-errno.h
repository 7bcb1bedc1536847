/* updater/server/sqlite-errno.h — the one place cairn-server turns an SQLite result code (extended codes too) into a
 * negative errno: 0 for OK/ROW/DONE, -EBUSY busy or locked, -EROFS, -ENOSPC full, -ENOMEM, -EACCES cannot open,
 * -EPERM, -EBADMSG corrupt or not a database, -EEXIST constraint, -EIO anything else. Used by the visit store
 * (db.c) and the FleetLock store (fleetlock.c). */
#pragma once

int server_sqlite_errno(int rc);
