/**
 * What a deploy with `enrol` hands the imaging agent (src/imaging/tasks.ts
 * start(), TaskSpec.enrol): where the deployed machine's endpoint agent
 * enrols (the server's HTTPS URL and its CA's SHA-256) and a one-use token
 * for the task's host. The token is an ordinary enrolment token of the
 * endpoint service (only its sha256 is stored) with three differences: it
 * names the task (a new one for the task revokes its unused earlier one),
 * it is bound to the host's MAC (src/endpoints/service.ts says what that
 * binding holds against), and it is valid DEPLOY_ENROL_TOKEN_TTL_SECONDS.
 */
import { X509Certificate } from 'node:crypto';
import { errorMessage } from '../lib/errors.js';
import { sha256Hex } from '../model/endpoint.js';
import type { EndpointService } from './service.js';

/** How long a deploy's enrolment token is valid: the deployed machine first boots its own disk within this time. */
export const DEPLOY_ENROL_TOKEN_TTL_SECONDS = 6 * 3600;

/** Where deployed machines' endpoint agents enrol, and the tokens they enrol with. */
export interface DeployEnrolment {
  /** The HTTPS URL and CA fingerprint the agent pins, or why there are none (HTTPS off). */
  target(): { server: string; caSha256: string } | { unavailable: string };
  /** A one-use token for the task's host, bound to its MAC (the task's unused earlier tokens revoked). */
  token(task: { id: number; mac: string }): Promise<string>;
}

export interface DeployEnrolmentOptions {
  endpoints: Pick<EndpointService, 'createToken'>;
  /** The address deployed machines reach the server at (config serverIp, or the detected one). */
  serverIp: string;
  /** The HTTPS port bound and the CA certificate (PEM) agents pin; nulls while HTTPS does not run. */
  https: () => { port: number | null; caPem: string | null };
}

export function createDeployEnrolment(o: DeployEnrolmentOptions): DeployEnrolment {
  let cached: { pem: string; sha256: string } | null = null;
  const caSha256 = (pem: string): string => {
    if (cached?.pem !== pem) cached = { pem, sha256: sha256Hex(new X509Certificate(pem).raw) };
    return cached.sha256;
  };
  return {
    target() {
      const { port, caPem } = o.https();
      if (port === null) return { unavailable: 'this server runs without HTTPS (https.enabled is false)' };
      if (caPem === null) return { unavailable: "its HTTPS certificate is the administrator's and https.caFile names no CA for agents to pin" };
      try {
        return { server: `https://${o.serverIp}:${port}`, caSha256: caSha256(caPem) };
      } catch (err) {
        return { unavailable: `the CA certificate of its HTTPS cannot be read (${errorMessage(err)})` };
      }
    },
    async token(task) {
      const { token } = await o.endpoints.createToken({
        host: task.mac,
        ttlSeconds: DEPLOY_ENROL_TOKEN_TTL_SECONDS,
        uses: 1,
        createdBy: `task #${task.id}`,
        taskId: task.id,
        macBound: true,
      });
      return token;
    },
  };
}
