// Turns schema failures (fastify's and our own Ajv's, same error shape) into
// problems whose message names the field.

import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { Problem } from './errors';
import { componentSchema } from './spec';

/** Ajv options shared by fastify's validator and ours: no coercion, no silent stripping. */
export const AJV_OPTIONS = {
  coerceTypes: false,
  removeAdditional: false,
  useDefaults: false,
  allErrors: false,
  allowUnionTypes: true,
  strict: false,
} as const;

export function fieldOf(e: ErrorObject, context?: string): string {
  const path = e.instancePath
    .split('/')
    .filter(Boolean)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
  const params = e.params as Record<string, unknown>;
  const leaf =
    e.keyword === 'required'
      ? String(params.missingProperty)
      : e.keyword === 'additionalProperties'
        ? String(params.additionalProperty)
        : null;
  const full = leaf ? (path ? `${path}.${leaf}` : leaf) : path;
  return full || context || 'body';
}

export function messageOf(e: ErrorObject, field: string): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${field} is required`;
    case 'additionalProperties':
      return `${field} is not a known field`;
    case 'enum':
      return `${field} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type':
      return `${field} must be ${String(params.type).split(',').join(' or ')}`;
    default:
      return `${field} ${e.message ?? 'is invalid'}`;
  }
}

export function problemFromAjv(errors: ErrorObject[], context?: string): Problem {
  const e = errors[0];
  const field = fieldOf(e, context);
  const where = context && context !== 'body' ? `${context} ` : '';
  return new Problem('VALIDATION', `${where}${messageOf(e, field)}`, { field });
}

let sendValidator: ValidateFunction | null = null;

/** Validates a send request that arrived over a WebSocket (same schema as POST /send). */
export function validateSendRequest(body: unknown): void {
  if (!sendValidator) {
    const ajv = new Ajv(AJV_OPTIONS);
    sendValidator = ajv.compile(componentSchema('SendRequest'));
  }
  if (!sendValidator(body)) throw problemFromAjv(sendValidator.errors ?? [], 'body');
}
