// The @nestjs/swagger compiler plugin, set up once for the build (scripts/build-if-stale.js)
// and for Jest (test/swagger-dto.transformer.js), so the tests serve the /docs-json of production.
//
// It reads *.dto.ts and *.entity.ts: each property's type, `?` (required), `| null`
// (nullable), string-literal unions (enum), its /** JSDoc */ (description, @example) and
// the class-validator decorators (minimum, maximum, minLength, pattern, enum from @IsIn, ...).
// An @ApiProperty on a property still wins over what the plugin infers, key by key.
// A description comes from a /** JSDoc */ only when it is the first thing before the property:
// a // comment above it, or at the end of the line before it, hides it from the plugin.
'use strict';

const options = {
  classValidatorShim: true,
  introspectComments: true,
  // DTOs and entities only: controllers document their routes with @ApiOperation/@ApiResponse
  // (the controller pass would only add a JSON string schema to the text/plain /metrics)
  controllerFileNameSuffix: [],
};

/** Changes when the plugin or its options change: every file must then be emitted again. */
const signature = `@nestjs/swagger ${require('@nestjs/swagger/package.json').version} ${JSON.stringify(options)}`;

/** The transformer for `program.emit(..., { before: [...] })`. */
function before(program) {
  // ESM-only package: loaded with require(esm), which Node >= 20.19 does without a flag
  return require('@nestjs/swagger/plugin').before({ ...options }, program);
}

module.exports = { options, signature, before };
