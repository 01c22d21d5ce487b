// Worker-thread entry: walks one local tree and posts the listing back as sorted columns.
import { parentPort, workerData } from 'node:worker_threads';
import { walkLocalTreeColumns } from './localTree';
import type { TreeListingOptions } from './types';

const request = workerData as TreeListingOptions & { root: string };
const result = walkLocalTreeColumns(request.root, request, (progress) => parentPort!.postMessage({ progress }));
const { sizes, mtimes, inos } = result.columns;
parentPort!.postMessage(result, [sizes.buffer, mtimes.buffer, inos.buffer] as ArrayBuffer[]);
