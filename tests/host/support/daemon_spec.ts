// Checks an HTTP response against openapi.yaml: the operation exists, the
// status is documented, the content type matches, the body fits the schema.

import Ajv2020 from 'ajv/dist/2020';
import type { ValidateFunction } from 'ajv';
import { deref, loadSpec, type OpenApiDoc } from '../../../daemon/spec';

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();

/** The spec's path template matching a concrete path ("/groups/10" → "/groups/{mask}"). */
export function templateOf(doc: OpenApiDoc, urlPath: string): string | null {
  const p = urlPath.split('?')[0];
  for (const tpl of Object.keys(doc.paths)) {
    const re = new RegExp('^' + tpl.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}|\{[^}]+\}/g, '[^/]+') + '$');
    if (re.test(p)) return tpl;
  }
  return null;
}

/**
 * Throws when the response does not match the spec. Undocumented paths may only answer 404 problems.
 * `checkBody: false` checks status and content type only (a HEAD answer, which has no body).
 */
export function assertMatchesSpec(
  method: string,
  urlPath: string,
  status: number,
  contentType: string,
  body: unknown,
  opts: { checkBody?: boolean } = {},
): void {
  const { doc } = loadSpec();
  const tpl = templateOf(doc, urlPath);
  const m = method.toLowerCase();
  const op = tpl ? doc.paths[tpl][m] : undefined;
  let responses = op?.responses;
  if (!op) {
    // Unknown paths answer the generic 404 problem; a known path asked with a
    // method it does not serve, 405 (with Allow).
    const expected = tpl ? 405 : 404;
    if (status !== expected) throw new Error(`${method} ${urlPath}: not in openapi.yaml and answered ${status} (expected ${expected})`);
    responses = { [String(expected)]: { $ref: '#/components/responses/Problem' } };
  }
  let resp = responses![String(status)];
  if (!resp)
    throw new Error(`${method} ${urlPath}: status ${status} is not documented in openapi.yaml (${Object.keys(responses!).join(', ')})`);
  if (resp.$ref) resp = deref(doc, resp) as typeof resp;
  const content = resp.content ?? {};
  const mediaType = contentType.split(';')[0].trim();
  const media = content[mediaType];
  if (!media)
    throw new Error(`${method} ${urlPath} ${status}: content type ${mediaType} is not documented (${Object.keys(content).join(', ')})`);
  if (opts.checkBody === false) return;
  const key = `${tpl ?? '*'} ${m} ${status} ${mediaType}`;
  let v = compiled.get(key);
  if (!v) {
    v = ajv.compile(deref(doc, media.schema) as object);
    compiled.set(key, v);
  }
  if (!v(body)) {
    throw new Error(
      `${method} ${urlPath} ${status}: body does not match openapi.yaml: ${ajv.errorsText(v.errors)}\n${JSON.stringify(body).slice(0, 500)}`,
    );
  }
}

/** Checks one WebSocket frame against StreamFrame. */
export function assertFrameMatchesSpec(frame: unknown): void {
  const { doc } = loadSpec();
  let v = compiled.get('frame');
  if (!v) {
    v = ajv.compile(deref(doc, doc.components.schemas.StreamFrame) as object);
    compiled.set('frame', v);
  }
  if (!v(frame)) throw new Error(`frame does not match StreamFrame: ${ajv.errorsText(v.errors)}\n${JSON.stringify(frame).slice(0, 500)}`);
}

/** Throws unless the response is an RFC 9457 problem (components/responses/Problem) with that status. */
export function assertIsProblem(status: number, contentType: string, body: unknown): void {
  const { doc } = loadSpec();
  const mediaType = contentType.split(';')[0].trim();
  if (mediaType !== 'application/problem+json')
    throw new Error(`status ${status}: content type ${mediaType || '(none)'} is not application/problem+json`);
  let v = compiled.get('problem');
  if (!v) {
    v = ajv.compile(deref(doc, doc.components.schemas.Problem) as object);
    compiled.set('problem', v);
  }
  if (!v(body))
    throw new Error(`status ${status}: body is not a Problem: ${ajv.errorsText(v.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
  if ((body as { status?: unknown }).status !== status)
    throw new Error(`problem says status ${String((body as { status?: unknown }).status)}, the response is ${status}`);
}
