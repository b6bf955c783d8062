import { NOTIFICATION_ATTRIBUTE_NAMES } from '../lib/model/attributes';
import type { NotificationAttributeName } from '../lib/model/attributes';
import { normaliseAttributes } from '../lib/server/attributes';
import type { NotificationAttributes } from '../lib/server/attributes';
import { Lwm2mRequestError } from '../lib/server/errors';
import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { timeoutOption } from './shared/options';
import { Status } from './shared/status';
import { catalog, t } from './shared/i18n';
import type { Translate } from './shared/i18n';

interface WriteAttributesConfig extends OperationConfig, Partial<Record<NotificationAttributeName, string>> {
  timeout?: string | number;
}

/** Attributes from the node's fields or msg.attributes: blank = not written, the word `clear` = removed (null). */
function parseAttributes(_: Translate, input: unknown, source: string): NotificationAttributes {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new Lwm2mRequestError(_('lwm2m-write-attributes.errors.notObject', { source }), 'bad-request');
  }
  const cleared = Object.fromEntries(
    Object.entries(input as Record<string, unknown>).map(([name, value]) => [
      name,
      typeof value === 'string' && value.trim().toLowerCase() === 'clear' ? null : value,
    ]),
  );
  try {
    return normaliseAttributes(cleared);
  } catch (err) {
    throw new Lwm2mRequestError(
      _('lwm2m-write-attributes.errors.invalid', { source, error: (err as Error).message }),
      'bad-request',
    );
  }
}

/** The attributes in the order of the specification (pmin, pmax, gt, lt, st, ...), whatever order they came in. */
function inOrder(attributes: NotificationAttributes): NotificationAttributes {
  const known = NOTIFICATION_ATTRIBUTE_NAMES.filter((name) => name in attributes).map((name) => [
    name,
    attributes[name],
  ]);
  const others = Object.entries(attributes).filter(
    ([name]) => !(NOTIFICATION_ATTRIBUTE_NAMES as readonly string[]).includes(name),
  );
  return Object.fromEntries([...known, ...others]) as NotificationAttributes;
}

/**
 * Write-Attributes: sets (or clears) the notification attributes of an object, instance or resource.
 * The node's fields win over msg.attributes. The server checks them against the device's version.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-write-attributes');
  function Lwm2mWriteAttributesNode(this: Node, config: WriteAttributesConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let configured: NotificationAttributes = {};
    let configError: Lwm2mRequestError | undefined;
    try {
      configured = parseAttributes(
        _,
        Object.fromEntries(NOTIFICATION_ATTRIBUTE_NAMES.map((name) => [name, config[name]])),
        _('lwm2m-write-attributes.errors.ownAttributes'),
      );
    } catch (err) {
      configError = err as Lwm2mRequestError;
      node.error(configError.message);
    }
    const status = operationNode(RED, node, config, async (server, target, msg) => {
      if (configError) throw configError;
      const attributes = inOrder({ ...parseAttributes(_, msg.attributes, 'msg.attributes'), ...configured });
      const result = await server.writeAttributes(target.endpoint, target.path, attributes, {
        owner: node.id,
        timeoutMs: timeoutOption(config.timeout),
      });
      if (result.replaced) {
        node.warn(
          t('warnings.attributesReplaced', {
            target: `${target.endpoint}${result.path}`,
            attributes: result.attributes.join('&'),
            replaced: result.replaced.attributes.join('&'),
            owner: result.replaced.owner,
          }),
        );
      }
      const { attributes: query, ...details } = result;
      return { details: { ...details, attributes, query } };
    });
    if (configError) status?.show(Status.error(_('lwm2m-write-attributes.status.badAttributes')));
  }
  RED.nodes.registerType(
    'lwm2m-write-attributes',
    Lwm2mWriteAttributesNode as unknown as (this: Node, def: NodeDef) => void,
  );
};
