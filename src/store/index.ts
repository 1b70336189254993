/** The store's public surface: open it, then call the repositories with `store.db`. */
export { openStore, migrate, DB_FILE, type Store } from './db.js';
export { ensureApiToken, readApiToken, tokenPath, TOKEN_FILE } from './token.js';
export { listEntries, getEntry, createEntry, deleteEntry, type BootEntry, type NewBootEntry } from './entries.js';
export { listHosts, getHost, createHost, updateHost, deleteHost, findBootTarget, hostReservations, type Host, type NewHost, type HostChanges, type HostReservation } from './hosts.js';
export { normaliseMac, isReservableIPv4, IPV4_PATTERN, isValidName, isValidFileName, isUrlSource, NAME_PATTERN, FILE_NAME_PATTERN } from './validate.js';
export type { Database } from './schema.js';
export { entryDir, entryFilePath, entryFileSize, writeEntryFile, removeEntryFiles } from './files.js';
export { openLeaseStore, listLeases, type LeaseInfo, type LeaseStoreHandle } from './leases.js';
