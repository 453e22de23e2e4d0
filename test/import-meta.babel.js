// NestJS 12 ships ESM-only packages. Jest's CommonJS runtime cannot require them, so
// jest.config.js compiles them to CommonJS with babel; this plugin rewrites the one ESM-only
// construct that transform leaves behind (`import.meta`).
module.exports = function importMetaToCommonJs({ types: t, template }) {
  // not `require('url')`: transformed modules may declare their own `const require`
  const url = template.expression.ast`'file://' + __filename`;
  return {
    visitor: {
      MetaProperty(path) {
        if (path.node.meta.name !== 'import' || path.node.property.name !== 'meta') return;
        const parent = path.parentPath;
        if (!parent.isMemberExpression() || !t.isIdentifier(parent.node.property)) return;
        const name = parent.node.property.name;
        if (name === 'url') parent.replaceWith(t.cloneNode(url));
        else if (name === 'dirname') parent.replaceWith(t.identifier('__dirname'));
        else if (name === 'filename') parent.replaceWith(t.identifier('__filename'));
        // @nestjs/terminus checks optional peers with import.meta.resolve (resolving, never loading)
        else if (name === 'resolve') parent.replaceWith(t.memberExpression(t.identifier('require'), t.identifier('resolve')));
      },
    },
  };
};
