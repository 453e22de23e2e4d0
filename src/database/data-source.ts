// Data source for the TypeORM CLI (`npm run migration:*`), from the same validated config as the app.
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config';
import { dataSourceOptions } from './data-source-options';

// every domain's entities, by file name: database/ imports no domain folder
const ENTITY_FILES = join(__dirname, '..', '**', '*.entity.{js,ts}');

export default new DataSource({ ...dataSourceOptions(loadConfig(process.env), 2), entities: [ENTITY_FILES] });
