import type { NodeAPI } from 'node-red';

/** The package's catalog as the English messages.json holds it; only its type is read, at compile time. */
type Catalog = (typeof import('../../locales/en-US/messages.json'))['durable-mqtt'];

/** The dotted path of every text in a catalog section, e.g. 'errors.no-user-dir'. */
type TextKeys<Section> = {
  [Key in keyof Section & string]: Section[Key] extends string ? Key : `${Key}.${TextKeys<Section[Key]>}`;
}[keyof Section & string];

/** A key of the package's catalog, below `durable-mqtt.`: a key that is not there does not compile. */
export type CatalogKey = TextKeys<Catalog>;

/** Values for a text's `__name__` placeholders. */
export type Substitutions = Record<string, string | number>;

/** A catalog text in the runtime's language. */
export type Translate = (key: CatalogKey, substitutions?: Substitutions) => string;

/**
 * The namespace of the package's catalog in Node-RED: the id of the plugin package.json declares
 * ("durable-mqtt"), whose catalog Node-RED loads once, before it loads any node file. A key without
 * a namespace would be looked up in the node file's own catalog, which has none.
 */
const CATALOG_NAMESPACE = 'node-red-contrib-durable-mqtt/durable-mqtt';

/** `t('errors.no-user-dir')`: RED._ with the package's catalog prefix, and keys checked by the compiler. */
export function translator(RED: NodeAPI): Translate {
  return (key, substitutions) => RED._(`${CATALOG_NAMESPACE}:durable-mqtt.${key}`, substitutions);
}
