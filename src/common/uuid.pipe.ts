import { Injectable, PipeTransform } from '@nestjs/common';
import { NotFoundError } from './errors/api-error';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A path id that is not a UUID cannot exist: 404, exactly like an unknown id. */
@Injectable()
export class UuidPipe implements PipeTransform<string, string> {
  constructor(private readonly what: string) {}

  transform(value: string): string {
    if (!UUID.test(value)) throw new NotFoundError(`${this.what} '${String(value).slice(0, 100)}' not found.`);
    return value.toLowerCase();
  }
}

export const WorkspaceId = new UuidPipe('Workspace');
export const KeyId = new UuidPipe('API key');
