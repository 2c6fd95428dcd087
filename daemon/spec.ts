// openapi.yaml is the one description of the API: route schemas are taken
// from it here, and the tests validate every response against it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

/** openapi.yaml at the repo root (dist/daemon/spec.js → ../..). */
export const SPEC_PATH = path.resolve(__dirname, '../../openapi.yaml');

export interface OpenApiDoc {
  paths: Record<string, Record<string, OperationObject>>;
  components: {
    schemas: Record<string, JsonSchema>;
    parameters: Record<string, ParameterObject>;
    responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
  };
  [k: string]: unknown;
}
export type JsonSchema = Record<string, unknown>;
export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: JsonSchema;
  $ref?: string;
}
export interface OperationObject {
  parameters?: ParameterObject[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { $ref?: string; content?: Record<string, { schema: JsonSchema }> }>;
}

let cached: { text: string; doc: OpenApiDoc } | null = null;

export function loadSpec(file = SPEC_PATH): { text: string; doc: OpenApiDoc } {
  if (cached && file === SPEC_PATH) return cached;
  const text = fs.readFileSync(file, 'utf8');
  const doc = parse(text) as OpenApiDoc;
  const out = { text, doc };
  if (file === SPEC_PATH) cached = out;
  return out;
}

/** Resolves a local "#/a/b/c" reference. */
export function resolveRef(doc: OpenApiDoc, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported, got ${ref}`);
  let node: unknown = doc;
  for (const part of ref.slice(2).split('/')) {
    node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (node === undefined) throw new Error(`unresolved $ref ${ref}`);
  }
  return node;
}

/**
 * A copy of `schema` with every $ref inlined and OpenAPI-only keywords
 * (description, examples, x-*) kept where JSON Schema allows them. The spec's
 * schemas are not recursive, so inlining terminates.
 */
export function deref(doc: OpenApiDoc, schema: unknown, depth = 0): unknown {
  if (depth > 50) throw new Error('schema nesting too deep (recursive $ref?)');
  if (Array.isArray(schema)) return schema.map((s) => deref(doc, s, depth + 1));
  if (schema === null || typeof schema !== 'object') return schema;
  const o = schema as Record<string, unknown>;
  if (typeof o.$ref === 'string') return deref(doc, resolveRef(doc, o.$ref), depth + 1);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k.startsWith('x-') || k === 'example' || k === 'examples') continue;
    out[k] = k === 'properties' || k === 'patternProperties' ? mapValues(v, (s) => deref(doc, s, depth + 1)) : deref(doc, v, depth + 1);
  }
  return out;
}

function mapValues(v: unknown, f: (x: unknown) => unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, f(x)]));
}

export function componentSchema(name: string): JsonSchema {
  const { doc } = loadSpec();
  return deref(doc, doc.components.schemas[name]) as JsonSchema;
}

/** Fastify querystring/params schema from an operation's parameters. */
export function parametersSchema(pathKey: string, method: string, where: 'path' | 'query'): JsonSchema {
  const { doc } = loadSpec();
  const op = doc.paths[pathKey]?.[method];
  if (!op) throw new Error(`openapi.yaml has no ${method.toUpperCase()} ${pathKey}`);
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const raw of op.parameters ?? []) {
    const p = (raw.$ref ? resolveRef(doc, raw.$ref) : raw) as ParameterObject;
    if (p.in !== where) continue;
    properties[p.name] = deref(doc, p.schema);
    if (p.required) required.push(p.name);
  }
  return { type: 'object', properties, required, additionalProperties: where === 'path' ? false : true };
}

export function requestBodySchema(pathKey: string, method: string): JsonSchema {
  const { doc } = loadSpec();
  const op = doc.paths[pathKey]?.[method];
  const schema = op?.requestBody?.content['application/json']?.schema;
  if (!schema) throw new Error(`openapi.yaml has no JSON body for ${method.toUpperCase()} ${pathKey}`);
  return deref(doc, schema) as JsonSchema;
}
