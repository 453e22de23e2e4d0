import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BillingService } from './billing.service';
import { HoldKeepAlive } from './hold-keep-alive.service';
import { EscrowLeases } from './leases/escrow-leases.service';
import { LedgerEntryEntity } from './ledger-entry.entity';
import { LedgerRepository } from './ledger.repository';
import { SettlementModule } from './settlement/settlement.module';

/**
 * Money: holds from reserve to settlement (the settlement queue is SettlementModule, its
 * workers SettlementWorkersModule), credits and the ledger. Other domains use BillingService.
 */
@Module({
  imports: [TypeOrmModule.forFeature([LedgerEntryEntity]), SettlementModule],
  providers: [LedgerRepository, HoldKeepAlive, EscrowLeases, BillingService],
  exports: [BillingService],
})
export class BillingModule {}
