import { Controller, Get, Redirect } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../common/auth-scope';
import { WEB_APP_ROOT } from './web-app.constants';

/** `/` is the dashboard's address: a newcomer opening http://localhost:3001/ lands in it. */
@ApiExcludeController()
@Public()
@Controller()
export class WebAppController {
  @Get()
  @Redirect(`${WEB_APP_ROOT}/`, 302)
  root(): void {}
}
