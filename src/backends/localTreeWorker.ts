// Worker-thread entry: walks one local tree and posts the packed listing back.
import { parentPort, workerData } from 'node:worker_threads';
import { packListing, walkLocalTree } from './localTree';
import type { TreeListingOptions } from './types';

const request = workerData as TreeListingOptions & { root: string };
const packed = packListing(walkLocalTree(request.root, request, (progress) => parentPort!.postMessage({ progress })));
parentPort!.postMessage(packed, [packed.sizes.buffer, packed.mtimes.buffer, packed.inos.buffer] as ArrayBuffer[]);
