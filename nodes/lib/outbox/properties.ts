import type { IClientPublishOptions } from 'mqtt';

type PublishProperties = NonNullable<IClientPublishOptions['properties']>;

/** MQTT 5 publish properties in a form JSON keeps: correlation data (bytes) as base64. */
export function encodeProperties(
  properties: PublishProperties | undefined,
): Record<string, unknown> | undefined {
  if (!properties) return undefined;
  const { correlationData, ...rest } = properties;
  return correlationData
    ? { ...rest, correlationData: Buffer.from(correlationData).toString('base64') }
    : { ...rest };
}

export function decodeProperties(stored: Record<string, unknown> | undefined): PublishProperties | undefined {
  if (!stored) return undefined;
  const { correlationData, ...rest } = stored;
  const properties = rest as PublishProperties;
  if (typeof correlationData === 'string')
    properties.correlationData = Buffer.from(correlationData, 'base64');
  return properties;
}
