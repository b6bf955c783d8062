/** The CoAP layer's public face: the endpoint, its types and options, and the codec helpers other layers use. */
export * from './types';
export { CoapEndpoint } from './endpoint';
export { DEFAULT_OPTIONS, resolveOptions, type ResolvedCoapEndpointOptions } from './endpoint-options';
export type { CoapEndpointStats } from './stats';
export {
  OptionNumbers,
  METHOD_CODES,
  blockValue,
  codeFromByte,
  codeToByte,
  coapCodeClass,
  decodeBlock,
  decodeUint,
  encodeBlock,
  encodeMessage,
  encodeUint,
  emptyMessage,
  getAccept,
  getContentFormat,
  getLocationPath,
  getLocationQuery,
  getMaxAge,
  getObserve,
  getOption,
  getOptions,
  getSize1,
  getSize2,
  getUriPath,
  getUriQuery,
  isCriticalOption,
  isSuccessCode,
  makeStringOption,
  makeUintOption,
  optionName,
  optionNumber,
  parseMessage,
  sizeToSzx,
  szxToSize,
  uintLength,
  type BlockOption,
  type EncOption,
} from './codec';
export { TimerHeap, type TimerItem } from './timers';
export {
  maxTransmitWait,
  requestTimeoutFor,
  type RequestTimeoutOptions,
  type TransmissionParameters,
} from './timeouts';
