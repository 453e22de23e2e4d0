import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DatabaseModule } from '../database/database.module';
import { HealthController } from './health.controller';
import { HttpDrain } from './http-drain.service';

/** Liveness, readiness (with this process's drain state) and the Prometheus endpoint. */
@Module({
  // failures are answered (503 with what is down), not logged on every probe
  imports: [DatabaseModule, TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [HttpDrain],
  exports: [HttpDrain],
})
export class HealthModule {}
