/**
 * `persistence` with the methods in `overrides` replaced; every other one is its own.
 * The Aedes persistences keep their state in #private fields, so their methods must run
 * with the persistence itself as `this`, not the proxy: each is bound once, on first use.
 */
export function withOverrides<P extends object>(persistence: P, overrides: Record<string, unknown>): P {
  const replaced = new Map<PropertyKey, unknown>(Object.entries(overrides));
  const boundMethods = new Map<PropertyKey, unknown>();
  return new Proxy(persistence, {
    get(target, property) {
      if (replaced.has(property)) return replaced.get(property);
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let method = boundMethods.get(property);
      if (!method) boundMethods.set(property, (method = value.bind(target)));
      return method;
    },
  });
}
