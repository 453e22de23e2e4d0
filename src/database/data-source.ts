// Data source for the TypeORM CLI (`npm run migration:*`), from the same validated config as the app.
import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config';
import { dataSourceOptions } from './data-source-options';

export default new DataSource(dataSourceOptions(loadConfig(process.env), 2));
