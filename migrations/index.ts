// Every migration, in order. `npm run migration:generate` writes a new file here: add its class below.
import { Initial1764100000000 } from './1764100000000-Initial';

export const MIGRATIONS = [Initial1764100000000];
