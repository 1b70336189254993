/**
 * Boot entries (roles: reads viewer, changes operator, deletes admin):
 *   GET    /api/v1/entries
 *   POST   /api/v1/entries                    { name, kernel, initrds?, cmdline? } -> 201
 *   GET    /api/v1/entries/:name
 *   DELETE /api/v1/entries/:name[?force=true] 409 while hosts use it, unless force (unassigns them)
 *   PUT    /api/v1/entries/:name/files/:file  body: the file's bytes (application/octet-stream) -> 201
 *
 * Local files are uploaded, not named by path: the CLI may talk to a server on
 * another machine. It first PUTs each file (streamed to a temporary file in
 * <dataDir>/entries/<name>/, then renamed), then POSTs the entry, whose
 * kernel/initrds name those files; a value starting with http:// or https://
 * is a URL that iPXE fetches as is. Entries are immutable: files cannot be
 * uploaded to an existing entry (delete and add it again).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ipxeArgsProblem, ipxeUrlProblem } from '../../boot/ipxe.js';
import { FleetbootError } from '../../lib/errors.js';
import { createEntry, deleteEntry, entryFileSize, getEntry, isUrlSource, isValidFileName, listEntries, removeEntryFiles, writeEntryFile, type BootEntry } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { entriesApi } from '../schemas/entries.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function entryRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  // Uploads arrive as a stream; writeEntryFile enforces the size limit.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.get('/entries', { config: { role: 'viewer' }, schema: entriesApi.list }, async () => ({
    entries: await listEntries(store.db),
  }));

  app.get('/entries/:name', { config: { role: 'viewer' }, schema: entriesApi.show }, async (req) => {
    const e = await getEntry(store.db, req.params.name);
    if (!e) throw new FleetbootError('NOT_FOUND', `No boot entry named '${req.params.name}'`);
    return e;
  });

  app.post('/entries', { config: { role: 'operator' }, schema: entriesApi.create }, async (req, reply) => {
    const { name, kernel, initrds = [], cmdline = '' } = req.body;
    for (const [what, src] of [['kernel', kernel], ...initrds.map((s, i) => [`initrds[${i}]`, s] as const)] as const) {
      await checkSource(ctx, name, what, src);
    }
    const problem = ipxeArgsProblem(cmdline);
    if (problem) throw new FleetbootError('INVALID_INPUT', `cmdline ${problem}`);
    const entry: BootEntry = await createEntry(store.db, { name, kernel, initrds, cmdline: cmdline.trim() });
    ctx.log.info({ subsystem: 'api', entry: name }, 'boot entry added');
    return reply.code(201).send(entry);
  });

  app.delete('/entries/:name', { config: { role: 'admin' }, schema: entriesApi.remove }, async (req) => {
    const force = req.query.force === 'true' || req.query.force === '1';
    const { unassigned } = await deleteEntry(store.db, req.params.name, { force });
    await removeEntryFiles(store.entriesDir, req.params.name);
    ctx.log.info({ subsystem: 'api', entry: req.params.name, unassigned }, 'boot entry deleted');
    return { deleted: req.params.name, unassigned };
  });

  app.put('/entries/:name/files/:file', { config: { role: 'operator' }, schema: entriesApi.upload }, async (req, reply) => {
    const { name, file } = req.params;
    if (await getEntry(store.db, name)) {
      throw new FleetbootError('CONFLICT', `Boot entry '${name}' already exists; entries cannot be changed: delete it and add it again`);
    }
    // No body schema (the body is a stream, not JSON): req.body is what the content-type parser gave.
    const raw: unknown = req.body;
    let body: Readable;
    if (raw instanceof Readable) body = raw;
    else if (raw === undefined || raw === null) body = Readable.from([]);
    else {
      return reply.code(415).send({ error: 'INVALID_INPUT', message: 'Send the file as the request body with Content-Type: application/octet-stream' });
    }
    const { size, sha256 } = await writeEntryFile(store.entriesDir, name, file, body, { maxBytes: ctx.maxUploadBytes });
    ctx.log.info({ subsystem: 'api', entry: name, file, size }, 'boot entry file uploaded');
    return reply.code(201).send({ entry: name, file, size, sha256 });
  });
}

async function checkSource(ctx: AppContext, entry: string, what: string, src: string): Promise<void> {
  if (isUrlSource(src)) {
    const p = ipxeUrlProblem(src);
    if (p) throw new FleetbootError('INVALID_INPUT', `${what} ${JSON.stringify(src)} ${p}`);
    return;
  }
  if (!isValidFileName(src)) {
    throw new FleetbootError('INVALID_INPUT', `${what} ${JSON.stringify(src)} is neither an http(s) URL nor a file name (letters, digits, . _ + -)`);
  }
  if ((await entryFileSize(ctx.store.entriesDir, entry, src)) === null) {
    throw new FleetbootError('INVALID_INPUT', `${what}: file ${src} has not been uploaded; PUT /api/v1/entries/${entry}/files/${src} first`);
  }
}
