# Globus GRAM5 LRM module "cloudorlocal": jobmanager-cloudorlocal.
#
# The cloud LRM (cloud.pm) for jobs that run on cloud nodes or the site's own, whichever frees first; cloudburst bursts while it waits. Same settings
# file (globus-cloud.conf). Install beside cloud.pm.

use strict;
use warnings;

use Globus::GRAM::JobManager::cloud;

package Globus::GRAM::JobManager::cloudorlocal;

our @ISA = ('Globus::GRAM::JobManager::cloud');

sub mode { return 'cloud_or_local'; }
sub default_queue { return 'cloud_or_local'; }

1;
