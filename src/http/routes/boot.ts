/**
 * What machines fetch while booting; no authentication, nothing secret:
 *   GET /boot.ipxe                   the entry script the proxyDHCP hands to iPXE
 *   GET /boot/decide?mac=..          the per-machine script (always 200 + a script)
 *   GET /boot/entries/:name/:file    files of boot entries (Range, exact sizes)
 */
import type { FastifyInstance } from 'fastify';
import { chainScript, messageScript } from '../../boot/ipxe.js';
import { decideBoot, decisionLogFields, parseDecideQuery, renderDecision } from '../../boot/decide.js';
import { entryDir, findBootTarget, getEntry, listEntries, FILE_NAME_PATTERN, NAME_PATTERN } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { resolveInside, sendFile } from '../send-file.js';

const IPXE = 'text/plain; charset=utf-8';

export async function bootRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store, config, log } = ctx;

  app.get('/boot.ipxe', async (req, reply) => {
    log.info({ subsystem: 'http', ip: req.ip, path: '/boot.ipxe' }, 'entry script served');
    return reply.header('content-type', IPXE).header('cache-control', 'no-store').send(chainScript(ctx.baseUrl()));
  });

  app.get('/boot/decide', { schema: { querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const q = parseDecideQuery(req.query as Record<string, unknown>);
    try {
      const target = q.mac ? await findBootTarget(store.db, q.mac) : { host: null, entry: null };
      const decision = decideBoot(q, target.host, target.entry);
      const script = renderDecision(decision, {
        baseUrl: ctx.baseUrl(),
        platform: q.platform,
        menuTimeoutSeconds: config.boot.menuTimeoutSeconds,
        menuEntries: decision.kind === 'menu' ? await listEntries(store.db) : [],
      });
      const fields = decisionLogFields(decision);
      const line = { subsystem: 'http', ip: req.ip, ...fields, platform: q.platform, buildarch: q.buildarch, uuid: q.uuid };
      if (decision.kind === 'entry') log.info(line, `boot decision: ${fields.mac} boots entry ${fields.entry}`);
      else if (decision.kind === 'menu') log.info(line, `boot decision: ${fields.mac} gets the menu (${fields.reason})`);
      else log.warn(line, 'boot decision: invalid MAC in the request');
      return reply.send(script);
    } catch (err) {
      log.error({ subsystem: 'http', ip: req.ip, mac: q.mac ?? q.rawMac, err }, 'boot decision failed');
      return reply.send(messageScript('server error while deciding how to boot this machine; see the server log'));
    }
  });

  app.route<{ Params: { name: string; file: string } }>({
    method: ['GET', 'HEAD'],
    url: '/boot/entries/:name/:file',
    exposeHeadRoute: false,
    schema: {
      params: {
        type: 'object',
        required: ['name', 'file'],
        properties: { name: { type: 'string', pattern: NAME_PATTERN }, file: { type: 'string', pattern: FILE_NAME_PATTERN } },
      },
    },
    handler: async (req, reply) => {
      const { name, file } = req.params;
      const entry = await getEntry(store.db, name);
      // Only files the entry uses are served (not leftovers of a failed upload).
      if (!entry || (entry.kernel !== file && !entry.initrds.includes(file))) {
        return reply.code(404).send({ error: 'NOT_FOUND', message: `No file ${file} in boot entry ${name}` });
      }
      const real = await resolveInside(entryDir(store.entriesDir, name), file);
      if (real === null) return reply.code(404).send({ error: 'NOT_FOUND', message: `No file ${file} in boot entry ${name}` });
      return sendFile(req, reply, real);
    },
  });
}
