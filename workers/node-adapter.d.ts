// comlink ships this adapter's types as node-adapter.d.ts next to node-adapter.mjs, which TypeScript does not
// pair. The `any`s are comlink's own: Node's MessagePort takes any value and transfer list.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';
  export interface NodeEndpoint {
    postMessage(message: any, transfer?: any[]): void;
    on(type: string, listener: (value: any) => void): void;
    off(type: string, listener: (value: any) => void): void;
    start?: () => void;
  }
  export default function nodeEndpoint(endpoint: NodeEndpoint): Endpoint;
}
