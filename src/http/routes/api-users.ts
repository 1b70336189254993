/**
 * Users (admin, but for one's own password):
 *   GET    /api/v1/users                       -> { users }
 *   POST   /api/v1/users { name, role, password? }   -> 201 { user, password? }: without a password one is
 *                                              generated, returned this once, and must be changed at the first login
 *   GET    /api/v1/users/:name
 *   PATCH  /api/v1/users/:name { role?, disabled? }  (409 for the last enabled admin)
 *   DELETE /api/v1/users/:name                 with its sessions and tokens (409 for the last enabled admin)
 *   POST   /api/v1/users/:name/password { password?, currentPassword? } -> { user, password? }
 *          one's own (any role): currentPassword and the new password are required;
 *          an admin, for another user: password optional (generated, one-time, when absent).
 *          The user's other sessions are revoked.
 * The first admin is made with the local admin token: `fleetboot user add NAME --role admin`.
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { aRole, roleAtLeast } from '../../model/roles.js';
import { createUser, deleteUser, getUser, listUsers, setPasswordHash, updateUser, type User } from '../../store/index.js';
import { principalOf } from '../auth.js';
import { clientAddress } from '../client-address.js';
import type { AppContext } from '../context.js';
import { usersApi } from '../schemas/users.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function userRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store, auth } = ctx;

  const found = async (name: string): Promise<User> => {
    const u = await getUser(store.db, name);
    if (!u) throw new FleetbootError('NOT_FOUND', `No user named '${name}' (fleetboot user list)`);
    return u;
  };

  app.get('/users', { config: { role: 'admin' }, schema: usersApi.list }, async () => ({
    users: await listUsers(store.db),
  }));

  app.post('/users', { config: { role: 'admin' }, schema: usersApi.create }, async (req, reply) => {
    const { name, role, password } = req.body;
    const generated = password === undefined ? await auth.generatedPassword() : null;
    const hash = generated?.hash ?? (await auth.hashChosenPassword(password ?? ''));
    const user = await createUser(store.db, { name, role, passwordHash: hash, mustChangePassword: generated !== null });
    ctx.log.info({ subsystem: 'auth', user: name, role, by: principalOf(req).actor, generated: generated !== null }, 'user added');
    return reply.code(201).send(generated ? { user, password: generated.password } : { user });
  });

  app.get('/users/:name', { config: { role: 'admin' }, schema: usersApi.show }, async (req) => found(req.params.name));

  app.patch('/users/:name', { config: { role: 'admin' }, schema: usersApi.update }, async (req) => {
    const user = await updateUser(store.db, req.params.name, req.body, auth.now().toISOString());
    ctx.log.info({ subsystem: 'auth', user: user.name, role: user.role, disabled: user.disabledAt !== null, by: principalOf(req).actor }, 'user changed');
    return user;
  });

  app.delete('/users/:name', { config: { role: 'admin' }, schema: usersApi.remove }, async (req) => {
    const p = principalOf(req);
    const deleted = await deleteUser(store.db, req.params.name);
    ctx.log.info({ subsystem: 'auth', user: deleted.name, by: p.actor }, 'user deleted');
    return { deleted };
  });

  app.post('/users/:name/password', { config: { role: 'viewer', beforePasswordChange: true }, schema: usersApi.password }, async (req) => {
    const p = principalOf(req);
    const name = req.params.name;
    const { password, currentPassword } = req.body ?? {};
    const own = p.user?.name === name;
    if (own) {
      if (password === undefined) throw new FleetbootError('INVALID_INPUT', 'Choose the new password ("password"); generated passwords are for an admin setting another user\'s');
      if (currentPassword === undefined) throw new FleetbootError('INVALID_INPUT', 'Changing your own password needs your current one too ("currentPassword")');
      const check = await auth.checkCurrentPassword(name, currentPassword, clientAddress(req.ip));
      if (!check.ok && check.reason === 'throttled') throw new FleetbootError('RATE_LIMITED', `Too many wrong passwords: try again in ${check.retryAfterSeconds} seconds`);
      if (!check.ok) throw new FleetbootError('FORBIDDEN', 'The current password is wrong');
    } else if (!roleAtLeast(p.role, 'admin')) {
      throw new FleetbootError('FORBIDDEN', `Only an admin may set another user's password; ${p.actor} is ${aRole(p.role)}`);
    } else {
      await found(name);
    }
    const generated = password === undefined ? await auth.generatedPassword() : null;
    const hash = generated?.hash ?? (await auth.hashChosenPassword(password ?? ''));
    const user = await setPasswordHash(store.db, name, hash, {
      mustChange: generated !== null,
      keepSessionId: own && p.kind === 'session' ? p.session.id : null,
      at: auth.now().toISOString(),
    });
    ctx.log.info({ subsystem: 'auth', user: name, by: p.actor, generated: generated !== null }, 'password changed');
    return generated ? { user, password: generated.password } : { user };
  });
}
