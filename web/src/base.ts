/** Where the console lives in the server's URL space. */
export const BASE = '/ui';
