// The package's message catalog as the build handles it: the namespace every lookup names, and the
// check that every key the nodes and dialogs use is in the catalog of every language.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** The language every other catalog is compared with, and Node-RED's fallback. */
const REFERENCE_LANGUAGE = 'en-US';

/**
 * The catalog's namespace in Node-RED: `<module>/<plugin>`, the id of the plugin that package.json
 * declares. Node-RED loads the catalog of a plugin once, before any node of the package.
 */
export function catalogNamespace(packageJson) {
  const plugins = Object.keys(packageJson['node-red'].plugins ?? {});
  if (plugins.length !== 1) throw new Error(`package.json declares ${plugins.length} plugins, not one`);
  return `${packageJson.name}/${plugins[0]}`;
}

/**
 * A template whose data-i18n keys name `namespace`: the editor looks a key without a namespace up
 * in the catalog of the node's own file, which has none.
 */
export function withNamespace(template, namespace) {
  return template.replace(/data-i18n="([^"]*)"/g, (_, keys) => {
    const named = keys.split(';').map((key) => {
      if (key.includes(':')) return key;
      const [, attribute, name] = /^(\[[^\]]*\])?(.*)$/.exec(key);
      return `${attribute ?? ''}${namespace}:${name}`;
    });
    return `data-i18n="${named.join(';')}"`;
  });
}

/** Every text of a catalog by its dotted key, and every key that holds a section. */
function flatten(catalog, prefix = '', texts = new Map(), sections = new Set()) {
  for (const [name, value] of Object.entries(catalog)) {
    const key = prefix + name;
    if (typeof value === 'string') texts.set(key, value);
    else {
      sections.add(key);
      flatten(value, `${key}.`, texts, sections);
    }
  }
  return { texts, sections };
}

const placeholders = (text) =>
  [...text.matchAll(/__(\w+)__/g)]
    .map((match) => match[1])
    .sort()
    .join(', ');

/** The keys a template's data-i18n attributes name in the package's catalog (not another namespace's). */
function templateKeys(template) {
  return [...template.matchAll(/data-i18n="([^"]*)"/g)]
    .flatMap((match) => match[1].split(';'))
    .filter((key) => !key.includes(':'))
    .map((key) => key.replace(/^\[[^\]]*\]/, ''));
}

/**
 * The keys a TypeScript source passes to `t(…)`, the translator of the nodes and the dialogs, below
 * `durable-mqtt.`: whole keys from string literals, and the fixed start of a template literal
 * (`t(\`topic-problem.${problem}\`)`), which must name a section.
 */
function sourceKeys(source) {
  const keys = [...source.matchAll(/\bt\(\s*(['"])([^'"]+)\1/g)].map((match) => match[2]);
  const sections = [...source.matchAll(/\bt\(\s*`([^`$]*)\$\{/g)].map((match) => match[1].replace(/\.$/, ''));
  return { keys, sections };
}

/**
 * What is wrong with the catalogs of `localesDirectory` (locales/<lang>/messages.json) for the
 * `templates` and `sources` (each { file, text }): a key used but missing in a language, a key one
 * language has and the reference language lacks, a text whose `__placeholders__` differ from the
 * reference's. Empty when all is well.
 */
export function catalogProblems(localesDirectory, templates, sources) {
  const catalogs = new Map(
    readdirSync(localesDirectory)
      .sort()
      .map((lang) => {
        const file = path.join(localesDirectory, lang, 'messages.json');
        return [lang, flatten(JSON.parse(readFileSync(file, 'utf8')))];
      }),
  );
  const reference = catalogs.get(REFERENCE_LANGUAGE);
  if (!reference) return [`no ${REFERENCE_LANGUAGE} catalog in ${localesDirectory}`];
  const problems = [];
  for (const [lang, { texts }] of catalogs) {
    if (lang === REFERENCE_LANGUAGE) continue;
    for (const [key, text] of reference.texts) {
      if (!texts.has(key)) problems.push(`${lang} lacks ${key}`);
      else if (placeholders(texts.get(key)) !== placeholders(text))
        problems.push(
          `${lang} ${key} has placeholders (${placeholders(texts.get(key))}), ${REFERENCE_LANGUAGE} (${placeholders(text)})`,
        );
    }
    for (const key of texts.keys())
      if (!reference.texts.has(key)) problems.push(`${lang} has ${key}, which ${REFERENCE_LANGUAGE} lacks`);
  }
  const uses = [
    ...templates.flatMap(({ file, text }) => templateKeys(text).map((key) => ({ file, key }))),
    ...sources.flatMap(({ file, text }) => {
      const { keys, sections } = sourceKeys(text);
      return [
        ...keys.map((key) => ({ file, key: `durable-mqtt.${key}` })),
        ...sections.map((section) => ({ file, key: `durable-mqtt.${section}`, section: true })),
      ];
    }),
  ];
  for (const { file, key, section } of uses)
    for (const [lang, { texts, sections }] of catalogs)
      if (!(section ? sections.has(key) : texts.has(key)))
        problems.push(`${file} uses ${key}${section ? '.…' : ''}, which the ${lang} catalog lacks`);
  return [...new Set(problems)];
}
